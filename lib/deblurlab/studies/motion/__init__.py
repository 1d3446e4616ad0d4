"""The motion-blur chapters (notebooks 05 and 07): the study, its results, figures, the network
comparison and the patch analysis."""
