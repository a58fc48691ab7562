"""capture: find printed sheets in camera frames and record what an ONNX model sees.

Torch-free by design: a capture station needs numpy, OpenCV and onnxruntime only.
"""
