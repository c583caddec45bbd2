"""The ground floor: settings, errors, media tools and the value types every part shares."""
