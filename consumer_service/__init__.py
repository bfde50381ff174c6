"""Consumer service: stores messages addressed to its client and dead-letters what fails."""
