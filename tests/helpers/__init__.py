"""What the tests share: photos and files made on the fly, model stand-ins, child
processes, and the tools that read what autotags wrote."""
