"""dropout_study: what dropout really does to convolutional and recurrent networks."""
