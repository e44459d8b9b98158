"""Verdicts and incidents: the rules that judge each line (rules.py), what an incident goes
through and who hears of it (lifecycle.py), and the feed consumer that runs them (engine.py)."""
