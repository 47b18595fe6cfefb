"""Alert service: plan targets, KPIs, rule lifecycle and notifiers (issue #5; not built yet)."""
