"""Caseclock: statutory clocks for children's social care cases in England."""
