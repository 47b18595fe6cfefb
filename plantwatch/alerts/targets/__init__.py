"""Plan targets: the shipped catalogue (catalogue.yaml) merged with a plant's overrides."""
