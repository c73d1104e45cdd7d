"""ONNX-to-ONNX transforms: fusion, quantization, fp16 and the choice of variant.

Nothing in this package imports torch.
"""
