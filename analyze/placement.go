package analyze

// PlacementSection is filled in by the placement section (work in progress this session).
type PlacementSection struct{}
