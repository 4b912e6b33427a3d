"""Write stage: files in memory -> the repository on disk (:mod:`.write`), with its manifest and the merges of
`archgen update`.
"""
