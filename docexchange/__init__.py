"""docexchange: signed official documents exchanged between Vietnamese agencies.

Signing (PAdES, NĐ 30/2020), edXML packets (QCVN 102:2016) routed through interconnection axes, and
verification reports (TT 15/2025) for clerks and auditors.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
