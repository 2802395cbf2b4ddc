"""The mental-health safety screen (text normalising, phrase lists, the learned
classifier and the decision), the staff handoffs with their spool, and the
staff alerts.

The screen runs in the Rasa server (in the NLU pipeline and in the channels);
the handoffs and alerts in both servers.
"""
