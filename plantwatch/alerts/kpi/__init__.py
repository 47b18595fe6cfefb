"""KPIs computed live from readings by their map role: per-tonne energy, pot-line DC energy, dust."""
