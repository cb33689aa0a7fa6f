"""quote-stance training: annotation tools, experiments, evaluation (may import `inference`)."""
