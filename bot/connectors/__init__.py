"""Rasa input channels written for the clinic (registered in credentials.yml)."""
