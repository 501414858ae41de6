"""The pure process core: (definition, state, event or time, calendar) -> (state, actions).

Nothing in this package does I/O or reads a clock, so it runs unchanged inside Temporal
workflow code, in tests and in simulations.
"""
