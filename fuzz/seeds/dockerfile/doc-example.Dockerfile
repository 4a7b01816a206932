FROM busybox
RUN echo one > /one
RUN rm /one
CMD ["ls", "/"]
