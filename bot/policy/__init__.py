"""Policy, pure: who may do what (permissions) and whether a plan may run now (admission)."""
