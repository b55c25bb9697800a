"""Studies of a net, one paper each: shattered gradients (``shatter``), lesions, paths,
loss landscapes, singularities, captum attribution, decision boundaries. Imports the science
layers below it (``spec``, ``nets``, ``data``, ``train``); never serve, figures, lessons or UI."""
