print("ranksweep")
