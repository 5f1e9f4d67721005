"""Development and operations tools, not the runtime: the `nimbus` command, the local stack,
migrate, seed, doctor, revoke."""
