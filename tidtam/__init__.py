"""tidtam (ติดตาม): follow up a provincial directive district by district.

The map, top to bottom (docs/architecture.md; import-linter checks it in `make test`):

    tidtam.cli                    the `tidtam` command
    tidtam.ops                    running it: Prefect server, deployments, automations, serve, init
    web | flows | tidtam.demo     pages and API · Prefect flows · demo data and the LINE stand-in
    tidtam.documents              the printed form, PDF, XLSX/CSV
    tidtam.app                    use cases, one module per capability
    tidtam.infra                  settings, database, the clock, paths, photo storage, pump wiring
    notifications                 channels (LINE, e-mail, webhook), the outbox pump, message texts
    models                        tables and their queries
    domain                        pure rules

Each folder imports only from those below it.
"""
