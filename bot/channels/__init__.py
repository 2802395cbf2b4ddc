"""The patient channels, run in the Rasa server (credentials.yml names them):
REST, socket.io for the website widget, SMS, and the guard that gives every
channel its safe reply when the action server is slow or away. The chat page
(``web_page``) is its own small server.
"""
