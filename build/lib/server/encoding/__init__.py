"""Encoding with PyAV: the fMP4 writer every encoder shares, the test pattern, its picture.

Only the slate, the demo pictures and the clients' test pattern encode; the live path never
does (it relays). Everything here is blocking work: call it from a worker thread.
"""
