"""flightdeck's engine: the landing contract, the pandera models and their SQL compiler, the loader, the
warehouse DDL, the dataset declarations, health maths and the settings. Nothing here imports Dagster, so
all of it is importable and unit-tested on its own; assets/, resources/ and sensors/ wire it into Dagster."""
