"""What the bot keeps of patients, and how it lets go of it.

- ``forget``: a patient who asks ("delete my conversation", "forget me") and
  confirms, or staff by sender id (``python -m bot.staff forget``), have the
  conversation deleted from the conversation store, its SMS call-back number,
  menu and message records deleted, and the patient's words dropped from its
  handoffs (the handoff's record stays, for the clinic's safety log). While
  staff have not resolved a handoff of the conversation, its SMS call-back
  number stays too: a patient in crisis is still called back.
- ``purge``: ``make purge`` (daily, from cron) does the same for everything
  older than ``BOT_RETENTION_DAYS`` (90) days; the call-back number of a
  handoff still open stays until staff resolve it.

Run by the action server (the patient's request), ``bot.staff`` and
``python -m bot.privacy``.
"""
