"""Plan stage: Architecture -> FilePlan (:mod:`.plan`), with one planner per generated component."""
