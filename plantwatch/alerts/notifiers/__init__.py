"""Notifiers behind one small interface: each takes transitions and delivers them, retrying."""
