"""What both HTTP services share: JSON errors, bodies, authentication by token or session, and CSRF."""
