"""Alert service: plan targets, live KPIs, alert lifecycle, and notifiers (email, Grafana)."""
