"""SMS through Twilio: the webhook (``connector``), its message format, the
keywords (HELP, STOP, START), the opt-out store and the phone-number keys.
"""
