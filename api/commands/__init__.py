"""The commands of `dabiao`, one module per area as the routes are: `base` (the App and what every command
shares), `setup`, `firms`, `users`, `audit`, `serve`, `demo`, and the groups of the later packages
(`notifications`, `deadlines`, `pool`, `certificates`, `campaign`); `api.cli` assembles them into `main`."""
