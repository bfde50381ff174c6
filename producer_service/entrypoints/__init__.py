"""The Flask application, its blueprints and the gunicorn configuration."""
