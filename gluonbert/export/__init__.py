"""ONNX export of fine-tuned gluonbert heads, verified under onnxruntime against MXNet.

``export_onnx(model, folder, vocab, label_names, max_len)`` writes a folder that
``export/predict.py`` serves with numpy and onnxruntime alone.
"""
from .exporter import ExportReport, export_onnx
from .operators import UnsupportedOperatorError
from .session import inference_session
from .verify import VerificationError

__all__ = ['export_onnx', 'ExportReport', 'UnsupportedOperatorError', 'VerificationError',
           'inference_session']
