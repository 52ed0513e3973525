"""The ``scorer run`` process: assembly from settings (:mod:`.build`), starting and stopping
it (:mod:`.run`), its HTTP endpoints (:mod:`.http`), signals and GC tuning."""
