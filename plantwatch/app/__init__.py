"""The application layer: the only place that wires collector, alerts, dashboards and simulator
together (collect, run, alerts over the bus, demo, and the other commands)."""
