// Pipeline module: see DESIGN.md
