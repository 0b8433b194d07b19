"""The scheduler: turns stored due steps into the three scheduler events."""
