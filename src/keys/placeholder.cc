// placeholder: the keys module is being written (issue 4).
