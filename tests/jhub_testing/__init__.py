"""What the tests and the bench share: the browser-equivalent client of a deployed hub (hubclient)."""
