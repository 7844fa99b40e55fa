"""Operating Refract: the command line and the local infrastructure it starts and stops."""
