# syntax=docker/dockerfile:1
# escape=\
FROM ${BASE:-busybox}
LABEL version=1.0 "description"="a \"quoted\" label"
ENV PATH=/app/bin:$PATH HOME=/root
ENV LEGACY some value with spaces
ENV abc=bye def=$abc ghi="${abc:+set}" jkl=${unset-default}
WORKDIR /app
WORKDIR sub/../dir
USER ${USER:-nobody}:1000
COPY --chown=1000:1000 app.sh lib/ /usr/local/bin/
COPY ["a b", "/dest/"]
RUN apk add curl \
    # a comment inside
    && rm -rf /var/cache/apk/*
RUN ["echo", "exec form"]
ENTRYPOINT ["top", "-b"]
CMD []
