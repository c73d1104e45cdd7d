"""Recognise a checkpoint's form, load it safely, and export it to ONNX."""
