"""Edge code behind the core's ports: database, mail, letters, broker."""
