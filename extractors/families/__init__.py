"""One thin adapter module per encoder family: `build(spec, checkpoint, device) -> Encoder`."""
