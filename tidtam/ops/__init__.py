"""Operations: the Prefect server, serving the deployments of prefect.yaml, the automations that
watch them, `tidtam serve`'s supervisor and `tidtam init`. May import every layer but the CLI."""
