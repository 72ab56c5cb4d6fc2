copy "%1" "%2"
