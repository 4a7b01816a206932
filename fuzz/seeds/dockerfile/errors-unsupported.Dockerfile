FROM alpine AS build
ADD x /x
from busybox
COPY --from=build /x /x
EXPOS 80
