"""The pure domain core: functions over plain data that return results with reasons.

Nothing in this package performs I/O or imports a library that does (a test enforces it).
"""
