"""Layer 3, drawing: the study's figures and the architecture diagrams (tables live in ``core``)."""
