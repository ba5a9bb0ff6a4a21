"""No Flask: the Socrata collector, publishing to a store, the trigger, and the jobs Lambda runs on a schedule or an upload."""
